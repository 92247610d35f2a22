// Passkey ceremonies (sign-in and registration). Served as a file: pages
// carry no inline script. Filled in with the WebAuthn routes.
