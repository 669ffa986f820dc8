// Start-up failures of a listener, with the fix in the message.
import { UserError } from '../../common/errors.js';

export class ListenError extends UserError {
  readonly code: string;
  constructor(address: string, protocol: string, cause: NodeJS.ErrnoException) {
    const fixes: Record<string, string> = {
      EADDRINUSE: `another program already uses ${address}: stop it (on Debian/Ubuntu often systemd-resolved: set DNSStubListener=no) or listen elsewhere, e.g. --dns-listen 0.0.0.0:5353`,
      EACCES: `no permission to bind ${address}: ports below 1024 need root, the CAP_NET_BIND_SERVICE capability (setcap 'cap_net_bind_service=+ep' "$(command -v node)", or --cap-add NET_BIND_SERVICE in Docker) or sysctl net.ipv4.ip_unprivileged_port_start=53; or use --dns-listen 0.0.0.0:5353`,
      EADDRNOTAVAIL: `${address} is not an address of this machine; use 0.0.0.0 (all IPv4) or [::] (all IPv6), or one of this host's addresses`,
      EAFNOSUPPORT: `IPv6 is not available here; drop ${address} from --dns-listen`,
    };
    super(`cannot listen on ${protocol} ${address}: ${cause.code ?? cause.message}. ${fixes[cause.code ?? ''] ?? cause.message}`);
    this.code = cause.code ?? 'listen-failed';
  }
}

export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
