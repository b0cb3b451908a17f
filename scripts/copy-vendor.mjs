// Copies the bpmn-js viewer bundle and its styles from node_modules into web/static/vendor/,
// so the progress page serves them itself (no CDN). Run by `npm ci` (postinstall).
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "node_modules", "bpmn-js", "dist");
const target = join(root, "web", "static", "vendor", "bpmn-js");

const files = [
  "bpmn-navigated-viewer.production.min.js",
  "assets/diagram-js.css",
  "assets/bpmn-js.css",
];
// The viewer draws no palette or context pad, so the bpmn-font icon font is not needed.

rmSync(target, { recursive: true, force: true });
for (const file of files) {
  mkdirSync(dirname(join(target, file)), { recursive: true });
  cpSync(join(dist, file), join(target, file));
}
console.log(`copied ${files.length} bpmn-js files to ${target}`);
