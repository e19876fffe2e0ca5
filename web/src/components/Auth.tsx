import { useEffect, useState } from "preact/hooks";
import { api, ApiError, rememberCsrf } from "../api";
import { t } from "../i18n";
import { navigate } from "../router";
import { deactivated, signedIn } from "../store";
import type { Invite, SignedIn } from "../types";
import { SecondFactorStep } from "./TwoFactor";

function errorText(exc: unknown): string {
  return exc instanceof ApiError ? exc.message : String(exc);
}

export function SignIn({ expired = false }: { expired?: boolean }) {
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [secondStep, setSecondStep] = useState(false);
  const finish = async (res: SignedIn) => {
    await signedIn(res);
    if (!expired && location.pathname === "/sign-in") navigate("/", true);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const res = await api<SignedIn>("POST", "/auth/sign-in", { login, password, session_type: "cookie" });
      if (res.second_factor_required) {
        // A pending session: only the code step accepts it.
        rememberCsrf(res.csrf_token);
        setPassword("");
        setSecondStep(true);
      } else await finish(res);
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 429 && exc.retryAfter !== null) setError(t("auth.tooMany", { seconds: Math.ceil(exc.retryAfter) }));
      else setError(t("auth.failed", { detail: errorText(exc) }));
    } finally {
      setBusy(false);
    }
  };
  if (secondStep) return <SecondFactorStep onSignedIn={finish} onRestart={() => setSecondStep(false)} />;
  return (
    <form class="auth-card" onSubmit={submit} aria-labelledby="signin-title">
      <h1 id="signin-title">{t("auth.signIn")}</h1>
      {expired && <p class="notice" role="alert">{deactivated.value ? t("auth.deactivated") : t("auth.expired")}</p>}
      <label>{t("auth.login")}<input name="login" autoComplete="username" value={login} onInput={(e) => setLogin(e.currentTarget.value)} required autoFocus /></label>
      <label>{t("auth.password")}<input name="password" type="password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required /></label>
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit" class="primary" disabled={busy}>{t("auth.signIn")}</button>
    </form>
  );
}

export function Setup() {
  const [form, setForm] = useState({ setup_token: "", organization_name: "", username: "", display_name: "", password: "" });
  const [error, setError] = useState("");
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    void api<{ needs_setup: boolean }>("GET", "/setup").then((s) => setDone(!s.needs_setup)).catch(() => undefined);
  }, []);
  const field = (name: keyof typeof form) => ({
    name,
    value: form[name],
    onInput: (e: { currentTarget: HTMLInputElement }) => setForm({ ...form, [name]: e.currentTarget.value }),
  });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const res = await api<SignedIn>("POST", "/setup", { ...form, display_name: form.display_name || null, session_type: "cookie" });
      await signedIn(res);
      navigate("/", true);
    } catch (exc) {
      setError(errorText(exc));
    } finally {
      setBusy(false);
    }
  };
  if (done) {
    return (
      <div class="auth-card">
        <h1>{t("setup.title")}</h1>
        <p>{t("setup.done")}</p>
        <a href="/sign-in" onClick={(e) => { e.preventDefault(); navigate("/sign-in"); }}>{t("auth.signIn")}</a>
      </div>
    );
  }
  return (
    <form class="auth-card" onSubmit={submit} aria-labelledby="setup-title">
      <h1 id="setup-title">{t("setup.title")}</h1>
      <p>{t("setup.intro")}</p>
      <label>{t("setup.token")}<input {...field("setup_token")} autoComplete="off" required autoFocus /></label>
      <label>{t("setup.org")}<input {...field("organization_name")} required /></label>
      <label>{t("setup.username")}<input {...field("username")} autoComplete="username" required /></label>
      <label>{t("setup.displayName")}<input {...field("display_name")} /></label>
      <label>{t("auth.password")}<input {...field("password")} type="password" autoComplete="new-password" required /></label>
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit" class="primary" disabled={busy}>{t("setup.create")}</button>
    </form>
  );
}

export function InviteSignUp({ token }: { token: string }) {
  const [invite, setInvite] = useState<Invite | null>(null);
  const [invalid, setInvalid] = useState(false);
  const [form, setForm] = useState({ username: "", display_name: "", email: "", password: "" });
  const [error, setError] = useState("");
  useEffect(() => {
    api<Invite>("POST", "/invites/inspect", { token }).then(setInvite).catch(() => setInvalid(true));
  }, [token]);
  const field = (name: keyof typeof form) => ({
    name,
    value: form[name],
    onInput: (e: { currentTarget: HTMLInputElement }) => setForm({ ...form, [name]: e.currentTarget.value }),
  });
  const submit = async (e: Event) => {
    e.preventDefault();
    setError("");
    try {
      const res = await api<SignedIn>("POST", "/invites/accept", {
        token, username: form.username, password: form.password,
        display_name: form.display_name || null, email: form.email || null, session_type: "cookie",
      });
      await signedIn(res);
      navigate("/", true);
    } catch (exc) {
      setError(errorText(exc));
    }
  };
  if (invalid) return <div class="auth-card"><p class="error" role="alert">{t("invite.invalid")}</p></div>;
  if (!invite) return <div class="auth-card"><p>{t("common.loading")}</p></div>;
  return (
    <form class="auth-card" onSubmit={submit} aria-labelledby="invite-title">
      <h1 id="invite-title">{t("invite.title", { org: t("app.name") })}</h1>
      <p>{t("invite.intro", { role: t(`role.${invite.role}`) })}</p>
      <label>{t("field.username")}<input {...field("username")} autoComplete="username" required autoFocus /></label>
      <label>{t("field.displayName")}<input {...field("display_name")} /></label>
      <label>{t("field.email")}<input {...field("email")} type="email" /></label>
      <label>{t("auth.password")}<input {...field("password")} type="password" autoComplete="new-password" required /></label>
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit" class="primary">{t("invite.join")}</button>
    </form>
  );
}
