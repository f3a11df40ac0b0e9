/**
 * Command line of `npm run bench`:
 *   --quick                1 round, short runs (about a minute in all)
 *   --scenario A[,B]       only scenarios whose name contains A or B
 *   --rounds N             interleaved rounds (default 3, quick 1)
 *   --duration S           seconds of load per measurement (default 5, quick 1)
 *   --latency-duration S   seconds of each latency measurement (default 10, quick 2)
 *   --loader wrk|autocannon  force a load generator (default: wrk when installed)
 *   --no-install           never apt-get install missing tools
 *   --no-pin               no taskset pinning
 *   --keep-tmp             keep the temp dir (configs, logs) and print its path
 *   --out DIR              where latest.json / latest.svg go (default bench/results)
 */
export interface Options {
  quick: boolean;
  scenario?: string;
  rounds: number;
  seconds: number;
  latencySeconds: number;
  warmupSeconds: number;
  loader?: 'wrk' | 'autocannon';
  install: boolean;
  pin: boolean;
  keepTmp: boolean;
  out?: string;
}

export function parseArgs(argv: readonly string[]): Options {
  const quick = argv.includes('--quick');
  const options: Options = {
    quick,
    rounds: quick ? 1 : 3,
    seconds: quick ? 1 : 5,
    latencySeconds: quick ? 2 : 10,
    warmupSeconds: quick ? 1 : 2,
    install: true,
    pin: true,
    keepTmp: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    switch (arg) {
      case '--quick': break;
      case '--scenario': options.scenario = value(); break;
      case '--rounds': options.rounds = positive(arg, value()); break;
      case '--duration': options.seconds = positive(arg, value()); break;
      case '--latency-duration': options.latencySeconds = positive(arg, value()); break;
      case '--loader': {
        const loader = value();
        if (loader !== 'wrk' && loader !== 'autocannon') throw new Error('--loader is wrk or autocannon');
        options.loader = loader;
        break;
      }
      case '--no-install': options.install = false; break;
      case '--no-pin': options.pin = false; break;
      case '--keep-tmp': options.keepTmp = true; break;
      case '--out': options.out = value(); break;
      default: throw new Error(`unknown option ${arg} (see bench/lib/args.ts)`);
    }
  }
  return options;
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} wants a whole number >= 1, not ${text}`);
  return n;
}
