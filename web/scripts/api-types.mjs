// Generate src/lib/api-types.ts (git-ignored) from the server's OpenAPI schema with openapi-typescript.
//
// The schema is web/openapi.json, written by `python -m slicewise.server.openapi openapi.json`, which
// `make web` runs first. When it is missing, this script writes it with the project's virtual
// environment (../.venv, or the Python named by $SLICEWISE_PYTHON). Files are rewritten only when their
// content changes, so a build with nothing new does not invalidate anything.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const schemaPath = join(web, "openapi.json");
const outPath = join(web, "src", "lib", "api-types.ts");

if (!existsSync(schemaPath)) {
  const python = process.env.SLICEWISE_PYTHON || join(web, "..", ".venv", "bin", "python");
  if (!existsSync(python)) {
    console.error(`${relative(process.cwd(), schemaPath)} is missing and there is no ${python} to write it: run \`make web\` ` +
      "from the repository root (it sets up the virtual environment and writes the schema first).");
    process.exit(1);
  }
  execFileSync(python, ["-m", "slicewise.server.openapi", schemaPath], { stdio: "inherit" });
}

const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
const ast = await openapiTS(schema, { alphabetize: false, exportType: false });
const header = "// Generated from the server's OpenAPI schema by web/scripts/api-types.mjs (openapi-typescript).\n" +
  "// Do not edit: `make web` (or `npm run types`) rewrites it. Import these types through src/lib/api.ts.\n\n";
const text = header + astToString(ast);
if (!existsSync(outPath) || readFileSync(outPath, "utf8") !== text) {
  writeFileSync(outPath, text);
  console.log(`wrote ${relative(process.cwd(), outPath)}`);
}
