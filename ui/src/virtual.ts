// A virtualized list: only the rows in view (plus a margin) exist in the
// DOM, so 10,000 pending requests (or 100,000 history rows) scroll as
// smoothly as ten.

export class VirtualList {
  private count = 0;
  private readonly spacer: HTMLDivElement;
  private readonly overscan = 8;
  private frame = 0;

  constructor(
    readonly container: HTMLElement,
    private readonly rowHeight: number,
    private readonly renderRow: (index: number) => HTMLElement,
    /** Told the last index each render shows (to load more near the end). */
    private readonly rendered?: (last: number) => void,
  ) {
    this.spacer = document.createElement("div");
    this.spacer.className = "vl-spacer";
    container.replaceChildren(this.spacer);
    container.addEventListener("scroll", () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(container);
  }

  setCount(n: number): void {
    this.count = n;
    this.spacer.style.height = `${n * this.rowHeight}px`;
    this.render();
  }

  /** Scrolls just enough to show row `i`. */
  reveal(i: number): void {
    const top = i * this.rowHeight;
    const bottom = top + this.rowHeight;
    const view = this.container;
    if (top < view.scrollTop) view.scrollTop = top;
    else if (bottom > view.scrollTop + view.clientHeight) view.scrollTop = bottom - view.clientHeight;
    this.render();
  }

  render(): void {
    const view = this.container;
    const first = Math.max(0, Math.floor(view.scrollTop / this.rowHeight) - this.overscan);
    const visible = Math.ceil((view.clientHeight || 600) / this.rowHeight) + 2 * this.overscan;
    const last = Math.min(this.count, first + visible);
    const rows: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const row = this.renderRow(i);
      row.style.position = "absolute";
      row.style.top = `${i * this.rowHeight}px`;
      row.style.height = `${this.rowHeight}px`;
      row.style.left = "0";
      row.style.right = "0";
      rows.push(row);
    }
    this.spacer.replaceChildren(...rows);
    this.rendered?.(last - 1);
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }
}
