// Opens a bundle's report.html from disk in headless Chromium (Debian's) and prints, as JSON,
// what a test asserts on: console errors, every request the page made, how long it took to
// load, the bars of the timeline (kind, node, title), the first finding's title, the marks,
// and axe-core's accessibility violations. Keeps a screenshot.
//
// usage: node report-check.cjs REPORT.html SCREENSHOT.png
// NODE_PATH must hold playwright-core and axe-core (tools.sh, component browser).
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

// Chromium's own background traffic is refused by a closed network; these flags keep it off
// (as the machine's notes say), so any request seen is the page's.
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function pageFacts(page) {
  return page.evaluate(() => ({
    bars: [...document.querySelectorAll('svg.timeline g.op')].map((g) => ({
      kind: g.getAttribute('data-kind'),
      node: g.getAttribute('data-node'),
      phase: [...g.classList].find((c) => c !== 'op'),
      title: g.querySelector('title').textContent,
      focusable: g.getAttribute('tabindex') === '0',
    })),
    lanes: [...document.querySelectorAll('svg.timeline text.lane')].map((t) => t.textContent),
    marks: document.querySelectorAll('svg.timeline g.mark').length,
    firstFinding: document.querySelector('#findings li strong')?.textContent ?? null,
    title: document.title,
  }));
}

async function main() {
  const [report, screenshot] = process.argv.slice(2);
  const url = 'file://' + path.resolve(report);
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ARGS });
  try {
    // As a reader opens it: the page's own Content-Security-Policy in force.
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const consoleErrors = [];
    const requests = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('request', (r) => requests.push(r.url()));
    const started = Date.now();
    await page.goto(url, { waitUntil: 'load' });
    const loadMs = Date.now() - started;
    const facts = await pageFacts(page);
    await page.screenshot({ path: screenshot, fullPage: true });
    await context.close();

    // axe-core needs its script in the page, which the page's policy refuses: a second
    // context that bypasses the policy, for this check only.
    const axeContext = await browser.newContext({ bypassCSP: true });
    const axePage = await axeContext.newPage();
    await axePage.goto(url, { waitUntil: 'load' });
    const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
    await axePage.addScriptTag({ content: axeSource });
    const axe = await axePage.evaluate(async () => {
      // eslint-disable-next-line no-undef
      const r = await axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.length, first: v.nodes[0]?.html?.slice(0, 200) }));
    });
    await axeContext.close();
    process.stdout.write(JSON.stringify({ loadMs, consoleErrors, requests, url, axe, ...facts }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
