import { constants } from 'node:os';
import { Observable } from 'rxjs';
import { describeValue } from './errors';

/**
 * The given process signals, as a stream. Subscribing adds one listener per signal to `process`
 * (which replaces Node's default action for that signal, e.g. exiting on `SIGTERM`);
 * unsubscribing removes them. Throws a `TypeError` at once for an unknown signal name or none.
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
  }
  return new Observable<NodeJS.Signals>((subscriber) => {
    const onSignal = (signal: NodeJS.Signals): void => subscriber.next(signal);
    for (const signal of signals) process.on(signal, onSignal);
    return () => {
      for (const signal of signals) process.off(signal, onSignal);
    };
  });
}
