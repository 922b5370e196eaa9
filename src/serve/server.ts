/**
 * Listening on a port: @hono/node-server around the app. Port 0 picks a free port (tests).
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { PlumError } from '../util/errors.js';

export interface RunningServer {
  /** e.g. http://127.0.0.1:8000 */
  url: string;
  port: number;
  close(): Promise<void>;
}

export function listen(app: Hono, opts: { port: number; host: string }): Promise<RunningServer> {
  return new Promise((resolveListen, rejectListen) => {
    const server = serve({ fetch: app.fetch, port: opts.port, hostname: opts.host }, (info: AddressInfo) => {
      const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolveListen({
        url: `http://${host}:${info.port}`,
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            if ('closeAllConnections' in server) server.closeAllConnections();
          }),
      });
    });
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') rejectListen(new PlumError(`--port ${opts.port}: address already in use on ${opts.host}; choose another port`));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') rejectListen(new PlumError(`--host ${opts.host}: not an address of this machine`));
      else rejectListen(e);
    });
  });
}
