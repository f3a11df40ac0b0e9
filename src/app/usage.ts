/**
 * CPU and memory of the supervised app, read from /proc/PID/stat every few
 * seconds (Linux; elsewhere the metrics simply stay at zero).
 */
import { readFile } from 'node:fs/promises';
import { appCpuSecondsTotal, appResidentMemory } from '../observe/metrics.ts';

const SAMPLE_MS = 5_000;
/** USER_HZ is 100 on every Linux we run on (sysconf(_SC_CLK_TCK)). */
const CLOCK_TICKS = 100;
const PAGE_SIZE = 4096;

export class AppUsageSampler {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  #lastCpuSeconds = 0;

  constructor(pid: number) {
    this.#pid = pid;
    this.#timer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.#timer.unref();
  }

  async sample(): Promise<void> {
    let stat: string;
    try {
      stat = await readFile(`/proc/${this.#pid}/stat`, 'utf8');
    } catch {
      return; // not Linux, or the process is gone
    }
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime + stime
    const rssPages = Number(fields[21]);
    if (cpuSeconds > this.#lastCpuSeconds) appCpuSecondsTotal.inc(cpuSeconds - this.#lastCpuSeconds);
    this.#lastCpuSeconds = cpuSeconds;
    appResidentMemory.set(rssPages * PAGE_SIZE);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
