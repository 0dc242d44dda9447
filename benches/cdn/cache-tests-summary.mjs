// Counts the results of the HTTP caching test suite (cache-tests.fyi) the way its report
// does (lib/display.mjs determineTestResult, dependencies honoured) for edgewise's run and
// for every reverse proxy and CDN whose results the suite ships, and prints them side by
// side, then edgewise's failed required tests by id.
//
// Usage: node cache-tests-summary.mjs SUITE_DIR EDGEWISE_RESULTS.json
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [suiteDir, ownFile] = process.argv.slice(2)
const load = (rel) => import(pathToFileURL(path.join(suiteDir, rel)).href)
const tests = (await load('tests/index.mjs')).default
// cli.mjs runs the Surrogate-Control suite too.
tests.push((await load('tests/surrogate-control.mjs')).default)
const display = await load('lib/display.mjs')
const shipped = (await load('results/index.mjs')).default

// The report's symbols, by what they mean.
const kinds = { '✅': 'passed', '⛔️': 'failed', '⚠️': 'optional failed', Y: 'check yes', N: 'check no', '🔹': 'setup failed', '⁉️': 'harness failed', '⚪️': 'dependency failed', '-': 'not run', '↻': 'retried' }
const columns = ['passed', 'failed', 'optional failed', 'check yes', 'check no', 'setup failed', 'harness failed', 'dependency failed', 'not run']

function count (results) {
  const counts = Object.fromEntries(columns.map(c => [c, 0]))
  const failed = []
  for (const suite of tests) {
    for (const test of suite.tests) {
      const symbol = display.determineTestResult(tests, test.id, results)[2]
      const kind = kinds[symbol] || 'not run'
      counts[kind] = (counts[kind] || 0) + 1
      if (kind === 'failed') failed.push(test.id)
    }
  }
  return { counts, failed }
}

const rows = [['edgewise-cdn (rfc9111-strict)', JSON.parse(fs.readFileSync(ownFile, 'utf8'))]]
for (const entry of shipped.filter(e => e.type !== 'browser')) {
  const results = JSON.parse(fs.readFileSync(path.join(suiteDir, 'results', entry.file), 'utf8'))
  rows.push([`${entry.name} ${entry.version}`, results])
}
const width = Math.max(...rows.map(r => r[0].length))
console.log(`${'implementation'.padEnd(width)} | ${columns.join(' | ')}`)
let own
for (const [name, results] of rows) {
  const { counts, failed } = count(results)
  own = own || failed
  console.log(`${name.padEnd(width)} | ${columns.map(c => String(counts[c]).padStart(c.length)).join(' | ')}`)
}
console.log(`\nedgewise-cdn: required tests failed (${own.length}): ${own.join(' ') || 'none'}`)
