// Two-factor sign-in: the code step of signing in, enrolment (forced or from Preferences),
// recovery codes, turning it off, and the re-authentication prompt sensitive actions need.
import { signal } from "@preact/signals";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, ApiError } from "../api";
import { t } from "../i18n";
import {
  cleanTotpInput, groupSecret, isTotpCode, recoveryCodesFile, secondFactorBody, secondFactorError, svgDataUrl,
} from "../logic";
import { enrolled, me, signOut } from "../store";
import type { Enrolment, SignedIn, TwoFactorStatus } from "../types";

function codeError(exc: unknown): string {
  if (!(exc instanceof ApiError)) return t("twofa.error.other", { detail: String(exc) });
  const e = secondFactorError(exc.status, exc.code, exc.retryAfter);
  return t(e.key, { seconds: e.seconds, detail: exc.message });
}

function detail(exc: unknown): string {
  return t("common.error", { detail: exc instanceof Error ? exc.message : String(exc) });
}

type CodeMode = "code" | "recovery";

/** One code field, focused when it appears: the authenticator's 6-digit code (numeric keypad; a
 * recovery code typed there is recognised too, except with digitsOnly), or (switched) a recovery code. */
function CodeField({ mode, value, onInput, label, digitsOnly = false }: { mode: CodeMode; value: string; onInput: (v: string) => void; label?: string; digitsOnly?: boolean }) {
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => { input.current?.focus(); }, [mode]);
  return mode === "code"
    ? (
      <label key="code">{label ?? t("auth.code")}
        <input key="code" ref={input} name="code" value={value} onInput={(e) => onInput(digitsOnly ? cleanTotpInput(e.currentTarget.value) : e.currentTarget.value)}
          autoComplete="one-time-code" inputMode="numeric" maxLength={digitsOnly ? 6 : undefined} required />
      </label>
    )
    : (
      <label key="recovery">{t("twofa.recoveryCode")}
        <input key="recovery" ref={input} name="recovery_code" value={value} onInput={(e) => onInput(e.currentTarget.value)}
          autoComplete="off" autoCapitalize="none" spellcheck={false} required />
      </label>
    );
}

/** The second step of signing in, sent with the pending session the password step opened. */
export function SecondFactorStep({ onSignedIn, onRestart }: { onSignedIn: (res: SignedIn) => Promise<void>; onRestart: () => void }) {
  const [mode, setMode] = useState<CodeMode>("code");
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [expired, setExpired] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const res = await api<SignedIn>("POST", "/auth/sign-in/second-factor", { ...secondFactorBody(mode, value), session_type: "cookie" });
      await onSignedIn(res);
    } catch (exc) {
      setError(codeError(exc));
      setValue("");
      if (exc instanceof ApiError && exc.code === "sign_in_expired") setExpired(true);
    } finally {
      setBusy(false);
    }
  };
  const switchMode = () => {
    setMode(mode === "code" ? "recovery" : "code");
    setValue("");
    setError("");
  };
  return (
    <form class="auth-card" onSubmit={submit} aria-labelledby="second-factor-title" data-testid="second-factor">
      <h1 id="second-factor-title">{t("twofa.step.title")}</h1>
      <p>{mode === "code" ? t("twofa.step.intro") : t("twofa.step.introRecovery")}</p>
      {!expired && <CodeField mode={mode} value={value} onInput={setValue} />}
      {error && <p class="error" role="alert">{error}</p>}
      {!expired && <button type="submit" class="primary" disabled={busy}>{t("auth.signIn")}</button>}
      {!expired && <button type="button" class="link" onClick={switchMode}>{mode === "code" ? t("twofa.useRecovery") : t("twofa.useApp")}</button>}
      <button type="button" class="link" onClick={onRestart}>{t("twofa.startOver")}</button>
    </form>
  );
}

// ---- re-authentication ---------------------------------------------------------------------

const reauthPrompt = signal<{ id: number; resolve: (ok: boolean) => void } | null>(null);
let reauthPrompts = 0;

/** Run a sensitive action; when the server wants a fresh password or code, ask, then retry once. */
export async function withReauth<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (exc) {
    if (!(exc instanceof ApiError && exc.status === 403 && exc.code === "reauthentication_required")) throw exc;
    const ok = await new Promise<boolean>((resolve) => { reauthPrompt.value = { id: ++reauthPrompts, resolve }; });
    if (!ok) throw new ApiError(0, "cancelled", "");
    return await action();
  }
}

function cancelled(exc: unknown): boolean {
  return exc instanceof ApiError && exc.code === "cancelled";
}

/** The prompt withReauth opens: password (or a code), POST /auth/reauthenticate. Each prompt is a
 * new form (keyed), so it starts empty without clearing what someone already typed into it. */
export function ReauthDialog() {
  const prompt = reauthPrompt.value;
  return prompt ? <ReauthForm key={prompt.id} resolve={prompt.resolve} /> : null;
}

function ReauthForm({ resolve }: { resolve: (ok: boolean) => void }) {
  const [usePassword, setUsePassword] = useState(true);
  const [mode, setMode] = useState<CodeMode>("code");
  const [password, setPassword] = useState("");
  const [value, setValue] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const close = (ok: boolean) => {
    reauthPrompt.value = null;
    resolve(ok);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await api("POST", "/auth/reauthenticate", usePassword ? { password } : secondFactorBody(mode, value));
      close(true);
    } catch (exc) {
      setError(usePassword && exc instanceof ApiError && exc.code === "reauthentication_failed" ? t("reauth.wrongPassword") : codeError(exc));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="backdrop">
      <div class="modal" role="dialog" aria-modal="true" aria-labelledby="reauth-title"
        onKeyDown={(e) => { if (e.key === "Escape") { e.preventDefault(); close(false); } }}>
        <form class="auth-card" onSubmit={submit}>
          <h2 id="reauth-title">{t("reauth.title")}</h2>
          <p>{usePassword ? t("reauth.intro") : t("reauth.introCode")}</p>
          {usePassword
            ? <label>{t("auth.password")}<input name="password" type="password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required autoFocus /></label>
            : <CodeField mode={mode} value={value} onInput={setValue} />}
          {error && <p class="error" role="alert">{error}</p>}
          <div class="row">
            <button type="submit" class="primary" disabled={busy}>{t("reauth.confirm")}</button>
            <button type="button" onClick={() => close(false)}>{t("twofa.enrol.cancel")}</button>
          </div>
          <button type="button" class="link" onClick={() => { setUsePassword(!usePassword); setMode("code"); setValue(""); setError(""); }}>
            {usePassword ? t("reauth.useCode") : t("reauth.usePassword")}
          </button>
          {!usePassword && (
            <button type="button" class="link" onClick={() => { setMode(mode === "code" ? "recovery" : "code"); setValue(""); setError(""); }}>
              {mode === "code" ? t("twofa.useRecovery") : t("twofa.useApp")}
            </button>
          )}
        </form>
      </div>
    </div>
  );
}

// ---- enrolment and recovery codes -----------------------------------------------------------

/** The ten recovery codes, shown once, with copy and download. */
function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  const [copied, setCopied] = useState("");
  const text = recoveryCodesFile(t("twofa.codes.fileHeading", { user: me.value?.username ?? "" }), codes);
  const href = useMemo(() => URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" })), [text]);
  useEffect(() => () => URL.revokeObjectURL(href), [href]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(codes.join("\n"));
      setCopied(t("twofa.codes.copied"));
    } catch {
      setCopied(t("twofa.codes.copyFailed"));
    }
  };
  return (
    <section class="stack" aria-labelledby="recovery-title">
      <h2 id="recovery-title">{t("twofa.codes.title")}</h2>
      <p>{t("twofa.codes.intro")}</p>
      <ol class="recovery-codes" data-testid="recovery-codes" aria-label={t("twofa.codes.list")}>
        {codes.map((c) => <li key={c}><code>{c}</code></li>)}
      </ol>
      <div class="row">
        <button type="button" onClick={() => void copy()}>{t("twofa.codes.copy")}</button>
        <a class="button" href={href} download="courtyard-recovery-codes.txt">{t("twofa.codes.download")}</a>
        <button type="button" class="primary" onClick={onDone}>{t("twofa.codes.done")}</button>
      </div>
      {copied && <p role="status">{copied}</p>}
    </section>
  );
}

/** Enrol an authenticator: new secret (QR as an <img>, key and URI as text), confirm a first code, recovery codes. */
function Enrol({ onDone, onCancel }: { onDone: () => void; onCancel?: () => void }) {
  const [enrolment, setEnrolment] = useState<Enrolment | null>(null);
  const [code, setCode] = useState("");
  const [codes, setCodes] = useState<string[] | null>(null);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const start = () => {
    setError("");
    withReauth(() => api<Enrolment>("POST", "/auth/two-factor/enrolment"))
      .then(setEnrolment)
      .catch((exc) => { if (cancelled(exc)) onCancel?.(); else setError(detail(exc)); });
  };
  useEffect(start, []);
  const confirm = async (e: Event) => {
    e.preventDefault();
    if (!isTotpCode(code)) {
      setError(t("twofa.error.format"));
      return;
    }
    setBusy(true);
    setError("");
    try {
      const res = await api<{ recovery_codes: string[] }>("POST", "/auth/two-factor/enrolment/confirm", { code });
      setCodes(res.recovery_codes);
    } catch (exc) {
      setError(codeError(exc));
      setCode("");
    } finally {
      setBusy(false);
    }
  };
  if (codes) return <RecoveryCodes codes={codes} onDone={onDone} />;
  if (!enrolment) {
    return (
      <div class="stack">
        {error ? <p class="error" role="alert">{error}</p> : <p>{t("common.loading")}</p>}
        {error && <button type="button" onClick={start}>{t("twofa.enrol.start")}</button>}
      </div>
    );
  }
  return (
    <form class="stack enrolment" onSubmit={confirm} data-testid="enrolment">
      <p>{t("twofa.enrol.scan")}</p>
      <img class="qr" src={svgDataUrl(enrolment.qr_svg)} alt={t("twofa.enrol.qrAlt")} data-testid="twofa-qr" />
      <p class="stack-tight"><span>{t("twofa.enrol.secret")}</span><code data-testid="twofa-secret" class="secret">{groupSecret(enrolment.secret)}</code></p>
      <label>{t("twofa.enrol.uri")}<input readOnly value={enrolment.otpauth_uri} onFocus={(e) => e.currentTarget.select()} /></label>
      <CodeField mode="code" value={code} onInput={setCode} label={t("twofa.enrol.confirmCode")} digitsOnly />
      {error && <p class="error" role="alert">{error}</p>}
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>{t("twofa.enrol.confirm")}</button>
        {onCancel && <button type="button" onClick={onCancel}>{t("twofa.enrol.cancel")}</button>}
      </div>
    </form>
  );
}

/** The only page for someone whose organisation requires a second factor they have not set up. */
export function RequiredEnrolment() {
  const [error, setError] = useState("");
  const done = () => { enrolled().catch((exc) => setError(detail(exc))); };
  return (
    <div class="auth-card wide" aria-labelledby="enrol-title">
      <h1 id="enrol-title">{t("twofa.enrol.start")}</h1>
      <p class="notice">{t("twofa.enrol.requiredIntro")}</p>
      <Enrol onDone={done} />
      {error && <p class="error" role="alert">{error}</p>}
      <button type="button" class="link" onClick={() => void signOut()}>{t("auth.signOut")}</button>
      <ReauthDialog />
    </div>
  );
}

/** The Two-factor section of Preferences. */
export function TwoFactorSettings() {
  const [status, setStatus] = useState<TwoFactorStatus | null>(null);
  const [view, setView] = useState<"status" | "enrol" | "codes">("status");
  const [codes, setCodes] = useState<string[]>([]);
  const [message, setMessage] = useState("");
  const [error, setError] = useState("");
  const load = () => api<TwoFactorStatus>("GET", "/auth/two-factor").then(setStatus).catch((exc) => setError(detail(exc)));
  useEffect(() => { void load(); }, []);
  const run = async (action: () => Promise<void>) => {
    setError("");
    setMessage("");
    try {
      await withReauth(action);
    } catch (exc) {
      if (!cancelled(exc)) setError(detail(exc));
    }
  };
  const regenerate = () => run(async () => {
    const res = await api<{ recovery_codes: string[] }>("POST", "/auth/two-factor/recovery-codes");
    setCodes(res.recovery_codes);
    setView("codes");
  });
  const disable = () => run(async () => {
    await api("DELETE", "/auth/two-factor");
    setMessage(t("twofa.turnedOff"));
    await load();
  });
  const back = () => { setView("status"); void load(); };
  return (
    <section class="stack" aria-labelledby="twofa-title" data-testid="two-factor">
      <h2 id="twofa-title">{t("twofa.settings.title")}</h2>
      {status && view === "status" && (
        <>
          <p data-testid="twofa-status" data-enabled={String(status.enabled)}>
            {status.enabled ? t("twofa.status.on", { count: status.recovery_codes_left }) : t("twofa.status.off")}
          </p>
          {status.required && <p class="dim">{t("twofa.status.required")}</p>}
          <div class="row">
            {!status.enabled && <button type="button" class="primary" onClick={() => { setMessage(""); setView("enrol"); }}>{t("twofa.enrol.start")}</button>}
            {status.enabled && <button type="button" onClick={() => void regenerate()}>{t("twofa.codes.regenerate")}</button>}
            {status.enabled && !status.required && <button type="button" class="danger" onClick={() => void disable()}>{t("twofa.disable")}</button>}
          </div>
        </>
      )}
      {view === "enrol" && <Enrol onDone={back} onCancel={back} />}
      {view === "codes" && <RecoveryCodes codes={codes} onDone={back} />}
      {message && <p role="status">{message}</p>}
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  );
}
