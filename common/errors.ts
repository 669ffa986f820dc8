// The one mark of an error that is the user's to fix (a setting, a list, a port in use, a missing
// table): the CLI prints its message, never a stack trace, and exits 2. Each module throws its own
// subclass with its own code; the CLI needs none of them loaded to recognise them.
export class UserError extends Error {}
