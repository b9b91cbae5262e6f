/** What a parser logged during one invocation, line by line, as a table. */

import type { InvocationLog } from '../api';

export function LogTable({ log, testid }: { log: InvocationLog | undefined; testid?: string }) {
  const lines = log?.lines ?? [];
  if (lines.length === 0) {
    return (
      <p class="muted" data-testid={testid}>
        The parser logged nothing.
      </p>
    );
  }
  return (
    <>
      <div class="log-scroll">
        <table class="log" data-testid={testid}>
          <thead>
            <tr>
              <th scope="col">Level</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {lines.map((line, n) => (
              <tr key={n} class={`level-${line.level}`}>
                <td>{line.level}</td>
                <td class="message">{line.message}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {log && log.dropped > 0 && <p class="muted">{log.dropped} more lines were dropped at the log's limit.</p>}
    </>
  );
}
