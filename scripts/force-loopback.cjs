// Preload (`node -r scripts/force-loopback.cjs ...`) that makes every TCP listen in the
// process bind 127.0.0.1. kinesis-mock (npm `kinesis-local`) binds 0.0.0.0 and has no option
// to change that; servers on this machine must listen on loopback only.
//
// Covers the forms of net.Server.prototype.listen (and so http/https/tls servers):
//   listen(), listen(cb), listen(port[, host][, backlog][, cb]), listen(options[, cb]).
// Unix socket paths, inherited handles and fds are left alone (they are not TCP addresses).
'use strict';
const net = require('net');

const LOOPBACK = '127.0.0.1';
const original = net.Server.prototype.listen;

function isPortLike(v) {
  return typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v));
}

net.Server.prototype.listen = function forcedLoopbackListen(...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object') {
    // listen(options[, cb]) or listen(handle[, backlog][, cb])
    const isHandle = first._handle !== undefined || first.fd !== undefined ||
      first.handle !== undefined || first.path !== undefined;
    if (!isHandle) {
      const options = Object.assign({}, first, { host: LOOPBACK });
      delete options.ipv6Only;
      args[0] = options;
    }
  } else if (first === undefined || typeof first === 'function') {
    // listen() or listen(cb): a random port on all addresses -> a random loopback port
    args.splice(0, first === undefined && args.length > 0 ? 1 : 0, 0, LOOPBACK);
  } else if (isPortLike(first)) {
    // listen(port[, host][, backlog][, cb])
    if (typeof args[1] === 'string' || args[1] === null || (args[1] === undefined && args.length > 1)) {
      args[1] = LOOPBACK;
    } else {
      args.splice(1, 0, LOOPBACK);
    }
  }
  // anything else (a unix socket path) goes through untouched
  return original.apply(this, args);
};
