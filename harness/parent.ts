/**
 * The child's side of harness/child.ts: messages to the orchestrator over the IPC channel, answers
 * to its calls, a `fatal` message for an uncaught error, and an exit once the orchestrator is gone.
 */
import type { CallMessage, Message } from './child';

/** Sends `message` to the orchestrator; `then` runs once it has been handed over (at once with no channel). */
export function sendToParent(message: object, then?: () => void): void {
  if (process.send === undefined || !process.connected) then?.();
  else process.send(message, undefined, undefined, () => then?.());
}

/**
 * Answers the orchestrator's calls (`Child.call`) with `answerers`, one async function per call
 * (their types are the calls' types: `CallsOf` in harness/child.ts), and its `Child.disconnect`.
 */
export function answerCalls(answerers: Record<string, (args: never) => Promise<unknown>>): void {
  process.on('message', (received: Message) => {
    if (received.type === 'disconnect') process.disconnect();
    if (received.type !== 'call') return;
    const { seq, call, args } = received as CallMessage;
    const reply = (outcome: { result: unknown } | { error: string }): void => sendToParent({ type: 'reply', seq, ...outcome });
    const answer = answerers[call];
    if (answer === undefined) reply({ error: `unknown call '${call}'` });
    else
      answer(args as never).then(
        (result) => reply({ result }),
        (error: unknown) => reply({ error: String(error) }),
      );
  });
}

/** Sends `error` to the orchestrator as a `fatal` message, then exits with code 2. */
export function reportFatal(error: unknown): void {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  sendToParent({ type: 'fatal', error: text }, () => process.exit(2));
}

/** Exits with code 0 once the orchestrator's IPC channel closes; returns the listener, to remove it. */
export function exitWithParent(): () => void {
  const exit = (): void => process.exit(0);
  process.on('disconnect', exit);
  return exit;
}
