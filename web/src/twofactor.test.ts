import { describe, expect, it } from "vitest";
import {
  cleanTotpInput, groupSecret, isTotpCode, recoveryCodesFile, secondFactorBody, secondFactorError, svgDataUrl,
} from "./logic";

describe("two-factor input", () => {
  it("keeps only digits of a typed or pasted code, at most six", () => {
    expect(cleanTotpInput(" 123 456 ")).toBe("123456");
    expect(cleanTotpInput("12-34-56-78")).toBe("123456");
    expect(cleanTotpInput("abc")).toBe("");
  });
  it("recognises only complete six-digit codes", () => {
    expect(isTotpCode("123456")).toBe(true);
    expect(isTotpCode("12345")).toBe(false);
    expect(isTotpCode("12345a")).toBe(false);
    expect(isTotpCode("1234567")).toBe(false);
  });
  it("sends a TOTP as code and a recovery code as recovery_code", () => {
    expect(secondFactorBody("code", "123 456")).toEqual({ code: "123456" });
    expect(secondFactorBody("recovery", "  abcd-efgh-jkmn-pqrs ")).toEqual({ recovery_code: "abcd-efgh-jkmn-pqrs" });
    // A recovery code typed into the authenticator field still counts as one.
    expect(secondFactorBody("code", " abcd-efgh-jkmn-pqrs")).toEqual({ recovery_code: "abcd-efgh-jkmn-pqrs" });
  });
});

describe("two-factor errors", () => {
  it("explains a lockout with the server's Retry-After, rounded up", () => {
    expect(secondFactorError(429, "too_many_attempts", 41.2)).toEqual({ key: "twofa.error.tooMany", seconds: 42 });
    expect(secondFactorError(429, "too_many_attempts", null)).toEqual({ key: "twofa.error.tooMany", seconds: 60 });
  });
  it("tells a wrong code, an expired sign-in and a malformed code apart", () => {
    expect(secondFactorError(401, "invalid_code", null).key).toBe("twofa.error.wrong");
    expect(secondFactorError(422, "invalid_code", null).key).toBe("twofa.error.wrong");
    expect(secondFactorError(403, "reauthentication_failed", null).key).toBe("twofa.error.wrong");
    expect(secondFactorError(401, "sign_in_expired", null).key).toBe("twofa.error.expired");
    expect(secondFactorError(422, "invalid_code_format", null).key).toBe("twofa.error.format");
    expect(secondFactorError(500, "error", null).key).toBe("twofa.error.other");
  });
});

describe("two-factor enrolment display", () => {
  it("turns the SVG into a data URL with nothing left unescaped", () => {
    const url = svgDataUrl('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0h1"/></svg>');
    expect(url.startsWith("data:image/svg+xml;charset=utf-8,")).toBe(true);
    expect(url).not.toMatch(/[<>"# ]/);
    expect(decodeURIComponent(url.split(",")[1])).toContain("<path");
  });
  it("makes the inline-style SVG a standalone, scalable image", () => {
    const url = svgDataUrl('<svg width="132" height="132" class="segno"><path d="M4 4.5h7"/></svg>');
    const svg = decodeURIComponent(url.split(",")[1]);
    expect(svg.startsWith('<svg viewBox="0 0 132 132" xmlns="http://www.w3.org/2000/svg" width="132"')).toBe(true);
    expect(svg).toContain('<path d="M4 4.5h7"/>');
    const already = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"></svg>';
    expect(decodeURIComponent(svgDataUrl(already).split(",")[1])).toBe(already);
  });
  it("groups the secret in fours", () => {
    expect(groupSecret("ABCDEFGHIJKLMN")).toBe("ABCD EFGH IJKL MN");
    expect(groupSecret("")).toBe("");
  });
  it("writes one recovery code a line", () => {
    expect(recoveryCodesFile("Courtyard recovery codes", ["a", "b"])).toBe("Courtyard recovery codes\n\na\nb\n");
  });
});
