/**
 * Serve the vote app over HTTP (Node's http server via @hono/node-server).
 *
 * @example
 * const server = await startVoteServer({ sets, store, port: 0 }); // 0: a free port
 * console.log(server.url); // http://127.0.0.1:39211/
 * await server.close();
 */
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { PlumError } from '../../util/errors.js';
import { createVoteApp, type VoteAppOptions } from './app.js';

export interface VoteServerOptions extends VoteAppOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
}

export interface VoteServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export function startVoteServer(opts: VoteServerOptions): Promise<VoteServer> {
  const host = opts.host ?? '127.0.0.1';
  const app = createVoteApp(opts);
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, port: opts.port, hostname: host }, (info: AddressInfo) => {
      const shown = host.includes(':') ? `[${host}]` : host;
      resolve({
        url: `http://${shown}:${info.port}/`,
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      });
    });
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new PlumError(`port ${opts.port} on ${host} is already in use; choose another --port (0 picks a free one)`));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') reject(new PlumError(`cannot listen on --host ${host} (${e.code}); use an address of this machine, e.g. 127.0.0.1`));
      else if (e.code === 'EACCES') reject(new PlumError(`no permission to listen on port ${opts.port}; use a port above 1023`));
      else reject(e);
    });
  });
}
