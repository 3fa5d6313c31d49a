// Preloaded into the reference sync server (`node --import ./loopback.mjs …`) by
// `labboard-bench compare`. The server listens on every interface by default and only takes a
// port; this binds every listening socket of the process to 127.0.0.1 instead, and prints the
// address it got (the port may be 0) so the bench knows where to connect.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    const port = Number(args[0]);
    const rest = args.slice(1).filter((arg) => typeof arg === "function");
    this.once("listening", () => {
      const address = this.address();
      console.log(`reference listening on 127.0.0.1:${address.port}`);
    });
    return listen.call(this, port, "127.0.0.1", ...rest);
  }
  return listen.apply(this, args);
};
