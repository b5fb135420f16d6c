// Draws a report's bar chart with Chart.js from the JSON block #report-data: either one
// series ({labels, values, title}) or several ({labels, datasets: [{label, values, color}]}).
(function () {
  const data = document.getElementById('report-data');
  const canvas = document.getElementById('report-chart');
  if (!data || !canvas || typeof Chart === 'undefined') return;
  const d = JSON.parse(data.textContent);
  const sets = d.datasets || [{ label: d.title, values: d.values, color: '#1d4ed8' }];
  new Chart(canvas, {
    type: 'bar',
    data: {
      labels: d.labels,
      datasets: sets.map(function (s) {
        return { label: s.label, data: s.values, backgroundColor: s.color };
      }),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: sets.length > 1 } },
    },
  });
})();
