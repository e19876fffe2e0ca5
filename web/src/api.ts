// The REST client: cookie session + CSRF header, problem+json errors, session-expiry hook.
export class ApiError extends Error {
  constructor(public status: number, public code: string, detail: string, public retryAfter: number | null = null) {
    super(detail);
  }
}

let onUnauthorized: (() => void) | null = null;
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

function csrfToken(): string {
  const match = document.cookie.match(/(?:^|;\s*)courtyard_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : sessionStorage.getItem("courtyard.csrf") ?? "";
}

export function rememberCsrf(token: string | null): void {
  if (token) sessionStorage.setItem("courtyard.csrf", token);
}

export async function api<T>(method: string, path: string, body?: unknown, init?: { raw?: BodyInit; signal?: AbortSignal }): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = csrfToken();
  let payload: BodyInit | undefined = init?.raw;
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(`/api/v1${path}`, { method, headers, body: payload, credentials: "same-origin", signal: init?.signal });
  } catch (exc) {
    throw new ApiError(0, "network", exc instanceof Error ? exc.message : String(exc));
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!response.ok) {
    const code = data?.code ?? "error";
    if (response.status === 401 && !path.startsWith("/auth/sign-in") && onUnauthorized) onUnauthorized();
    const retry = Number(response.headers.get("retry-after") ?? "");
    throw new ApiError(response.status, code, data?.detail ?? data?.title ?? response.statusText, Number.isFinite(retry) && retry > 0 ? retry : null);
  }
  return data as T;
}
