// Draws each report that has a chart from its table (the page's JSON), with the vendored Chart.js.
(function () {
  var charts = JSON.parse(document.getElementById("charts").textContent);
  document.querySelectorAll("canvas[data-report]").forEach(function (canvas) {
    var report = charts[canvas.dataset.report];
    var labels = report.rows.map(function (row) { return String(row[0]); });
    var datasets = report.headings.slice(1).map(function (heading, i) {
      return { label: heading, data: report.rows.map(function (row) { return Number(row[i + 1]) || 0; }) };
    });
    canvas.chart = new Chart(canvas, {
      type: report.type,
      data: { labels: labels, datasets: datasets },
      options: { animation: false, responsive: true, maintainAspectRatio: false },
    });
  });
  document.body.dataset.chartsDrawn = String(document.querySelectorAll("canvas[data-report]").length);
})();
