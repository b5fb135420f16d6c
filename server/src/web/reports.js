// Draws a report's bar chart with Chart.js from the JSON block #report-data.
(function () {
  const data = document.getElementById('report-data');
  const canvas = document.getElementById('report-chart');
  if (!data || !canvas || typeof Chart === 'undefined') return;
  const d = JSON.parse(data.textContent);
  new Chart(canvas, {
    type: 'bar',
    data: {
      labels: d.labels,
      datasets: [{ label: d.title, data: d.values, backgroundColor: '#1d4ed8' }],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
    },
  });
})();
