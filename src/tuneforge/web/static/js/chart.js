// Line charts of training metrics (uPlot). One chart per quantity; x is the training step.
import { t } from "./i18n.js";
import uPlot from "../vendor/uplot/uPlot.esm.js";

const COLORS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea"];
// Steps are whole numbers: tick spacings uPlot may pick on the x axis (no 2.5 ticks).
const STEP_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];

/**
 * A chart that can be fed the full metric series again whenever new events arrive.
 * `series` is [{label, key}] where key names a field of the metrics event data.
 */
export class MetricChart {
  constructor(container, title, series, yRange = null) {
    this.container = container;
    this.yRange = yRange;
    this.series = series;
    this.plot = null;
    this.title = title;
    this.resize = () => this.plot && this.plot.setSize(this.size());
    window.addEventListener("resize", this.resize);
  }

  size() {
    const width = Math.max(260, this.container.clientWidth - 4);
    return { width, height: Math.round(Math.min(260, Math.max(180, width * 0.45))) };
  }

  /** points: metrics dicts sorted by step. Series with no values yet (e.g. valid without a validation
   * file) are left out; the chart is rebuilt when one first gets data. */
  update(points) {
    const steps = points.map((p) => p.step);
    const all = this.series.map((s) => points.map((p) => (typeof p[s.key] === "number" ? p[s.key] : null)));
    const active = this.series.filter((_, i) => all[i].some((v) => v !== null));
    const key = active.map((s) => s.key).join(",");
    if (this.plot && key !== this.activeKey) {
      this.plot.destroy();
      this.plot = null;
    }
    this.activeKey = key;
    const data = [steps, ...all.filter((col) => col.some((v) => v !== null))];
    if (!this.plot) {
      this.plot = new uPlot({
        ...this.size(),
        title: this.title,
        scales: { x: { time: false }, ...(this.yRange ? { y: { range: this.yRange } } : {}) },
        legend: { live: false },
        axes: [{ label: t("chart.step"), incrs: STEP_INCRS }, { size: 50 }],
        series: [
          { label: t("chart.step") },
          ...active.map((s) => ({
            label: s.label, stroke: COLORS[this.series.indexOf(s) % COLORS.length], width: 2, spanGaps: true,
            points: { show: s.points ?? false, size: 6 },
          })),
        ],
      }, data, this.container);
    } else {
      this.plot.setData(data);
    }
  }

  destroy() {
    window.removeEventListener("resize", this.resize);
    if (this.plot) this.plot.destroy();
  }
}
