/**
 * Talking to a sidecar with `workers`: each request on a new connection, so
 * the kernel (SO_REUSEPORT) picks a worker each time.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'undici';

/** GET `path` on 127.0.0.1:`port` over a connection of its own; the body is read and dropped. */
export async function freshRequest(port: number, path = '/'): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  const agent = new Agent({ pipelining: 0 });
  try {
    const response = await request(`http://127.0.0.1:${port}${path}`, { dispatcher: agent });
    await response.body.dump();
    return { status: response.statusCode, headers: response.headers };
  } finally {
    await agent.close();
  }
}
