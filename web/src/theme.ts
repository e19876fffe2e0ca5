import { signal } from "@preact/signals";

export type Theme = "system" | "light" | "dark";
const saved = localStorage.getItem("courtyard.theme");
export const theme = signal<Theme>(saved === "light" || saved === "dark" ? saved : "system");

export function applyTheme(): void {
  const dark = theme.value === "dark" || (theme.value === "system" && matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

export function setTheme(next: Theme): void {
  theme.value = next;
  localStorage.setItem("courtyard.theme", next);
  applyTheme();
}

matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);
