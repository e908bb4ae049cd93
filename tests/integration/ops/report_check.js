// Loads a page of `mailkeep report` in Debian's headless Chromium (driven by
// playwright-core, which fetches no browser of its own) and prints, as JSON:
// console errors and warnings, uncaught page errors, every request that was
// not for the file itself (there must be none: the page needs no network),
// the totals table, each chart's canvas and how many of its pixels were
// painted, and the data the charts were drawn from.
//   node report_check.js PAGE.html [SCREENSHOT.png]      (NODE_PATH: playwright-core)
const path = require('path');
const { chromium } = require('playwright-core');

(async () => {
  const file = path.resolve(process.argv[2]);
  const shot = process.argv[3];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  const requests = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (r.url() !== 'file://' + file) requests.push(r.url());
  });
  await page.goto('file://' + file, { waitUntil: 'load' });
  await page.waitForFunction(() => window.mailkeepReport && window.mailkeepReport.ready, null,
                             { timeout: 20000 });
  const result = await page.evaluate(() => {
    const totals = {};
    document.querySelectorAll('#totals td[id]').forEach((td) => { totals[td.id] = Number(td.textContent); });
    const canvases = [...document.querySelectorAll('canvas')].map((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let painted = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i]) painted++;
      return { id: c.id, width: c.width, height: c.height, chart: Chart.getChart(c) !== undefined, painted };
    });
    const senders = [...document.querySelectorAll('#senders-table tr td:first-child')].map((td) => td.textContent);
    return { totals, canvases, charts: window.mailkeepReport.charts, data: window.mailkeepReport.data,
             senders, title: document.title };
  });
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  await browser.close();
  console.log(JSON.stringify({ errors, requests, ...result }));
})().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
