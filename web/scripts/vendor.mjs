// Copies third-party browser bundles the server serves itself, so that nothing is loaded from
// a CDN: Courtyard must work on a network with no internet access.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vendored = [["node_modules/redoc/bundles/redoc.standalone.js", "dist/vendor/redoc.standalone.js"]];

for (const [from, to] of vendored) {
  mkdirSync(dirname(join(root, to)), { recursive: true });
  copyFileSync(join(root, from), join(root, to));
  console.log(`vendored ${to}`);
}
