// DNS wire-format numbers the hot path needs, named once so no module spells a magic number.
// Objects are `as const` so a value keeps its literal type (RCODE.NXDOMAIN is `3`, not `number`).

/** RR types we answer, refuse or recognise (RFC 1035, 3596, 2782, 6891, 9460, 8482, 1995). */
export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  SVCB: 64,
  HTTPS: 65,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

/** Classes: IN is the only one we serve; CH and ANY are named so callers can refuse them explicitly. */
export const CLASS = {
  IN: 1,
  CH: 3,
  ANY: 255,
} as const;

/** Response codes; BADVERS (16) does not fit the header nibble and rides in the OPT TTL (RFC 6891 §6.1.3). */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;

/** Opcodes: only QUERY is served; the rest are named for logs and NOTIMP reasons. */
export const OPCODE = {
  QUERY: 0,
  IQUERY: 1,
  STATUS: 2,
  NOTIFY: 4,
  UPDATE: 5,
} as const;

/** Extended DNS Error INFO-CODEs (RFC 8914 §4) that say why we answered the way we did. */
export const EDE = {
  Other: 0,
  StaleAnswer: 3,
  CachedError: 13,
  NotReady: 14,
  Blocked: 15,
  Censored: 16,
  Filtered: 17,
  Prohibited: 18,
  StaleNxdomainAnswer: 19,
  NotAuthoritative: 20,
  NotSupported: 21,
  NoReachableAuthority: 22,
  NetworkError: 23,
  InvalidData: 24,
} as const;

/** EDNS option codes we write or read (RFC 8914 EDE, RFC 7830 padding). */
export const EDNS_OPTION = {
  EDE: 15,
  PADDING: 12,
} as const;

/** UDP payload size we advertise and never exceed over UDP: DNS Flag Day 2020's no-fragmentation value. */
export const EDNS_UDP_SIZE = 1232;

/** Payload size a requester without EDNS is limited to (RFC 1035 §4.2.1); also the EDNS floor (RFC 6891 §6.2.5). */
export const CLASSIC_UDP_SIZE = 512;

/** Octets in a DNS header (RFC 1035 §4.1.1). */
export const HEADER_SIZE = 12;

/** Header flag bits, as masks over the 16-bit flags word (RFC 1035 §4.1.1, RFC 4035 §3.2). */
export const FLAG = {
  QR: 0x8000,
  OPCODE_MASK: 0x7800,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
  RCODE_MASK: 0x000f,
} as const;

/** DO bit in the OPT TTL field (RFC 3225). */
export const OPT_DO = 0x8000;

/** Longest EXTRA-TEXT we put in an EDE option, in octets; longer text is cut at a character boundary. */
export const EDE_TEXT_MAX = 255;

/** Wire-format limits (RFC 1035 §2.3.4): label octets and whole-name octets including length bytes and the root. */
export const MAX_LABEL = 63;
export const MAX_NAME_WIRE = 255;
