import { constants } from 'node:os';
import { Observable } from 'rxjs';
import { describeValue } from './errors';

/** Signals no process can catch: Node refuses a listener for them. */
const uncatchable: ReadonlySet<string> = new Set(['SIGKILL', 'SIGSTOP']);

/**
 * The given process signals, as a stream. Subscribing adds one listener per signal to `process`
 * (which replaces Node's default action for that signal, e.g. exiting on `SIGTERM`);
 * unsubscribing removes them. Throws a `TypeError` at once, adding no listener, for an unknown
 * signal name, for none, or for a signal that cannot be caught (`SIGKILL`, `SIGSTOP`).
 *
 * @example
 * fromSignals('SIGTERM', 'SIGINT').pipe(take(1)).subscribe(server.shutdown$);
 */
export function fromSignals(...signals: NodeJS.Signals[]): Observable<NodeJS.Signals> {
  if (signals.length === 0) throw new TypeError('rx-graceful: fromSignals() needs at least one signal name, e.g. "SIGTERM"');
  for (const signal of signals) {
    if (typeof signal !== 'string' || !Object.prototype.hasOwnProperty.call(constants.signals, signal)) {
      throw new TypeError(
        `rx-graceful: fromSignals() got ${describeValue(signal)}, which is not a signal name such as "SIGTERM"`,
      );
    }
    if (uncatchable.has(signal)) {
      throw new TypeError(
        `rx-graceful: fromSignals() got ${describeValue(signal)}, which no process can catch; use a signal such as "SIGTERM" or "SIGINT"`,
      );
    }
  }
  return new Observable<NodeJS.Signals>((subscriber) => {
    const onSignal = (signal: NodeJS.Signals): void => subscriber.next(signal);
    const remove = (): void => {
      for (const signal of signals) process.off(signal, onSignal);
    };
    try {
      for (const signal of signals) process.on(signal, onSignal);
    } catch (error) {
      // A signal this platform refuses: the listeners added before it go too.
      remove();
      throw error;
    }
    return remove;
  });
}
