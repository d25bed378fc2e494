// A real local OpenID Connect provider for the tests (npm's oauth2-mock-server, pinned in
// package.json). It prints {"issuer": ...} once listening. Each line on stdin is a JSON
// object of claims to put into every token signed from then on and into userinfo answers
// (sub, email, email_verified, nonce...), with those under "userinfo_only" in userinfo
// answers alone; it answers "ok" to each.
import readline from 'node:readline';
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
let claims = {};
let userinfoOnly = {};
// After the server's own claims (the nonce of the authorize request included), so a test
// can replace any of them.
server.issuer.on('beforeSigning', (token) => {
  Object.assign(token.payload, claims);
});
server.service.on('beforeUserinfo', (response) => {
  response.body = { ...response.body, ...claims, ...userinfoOnly };
});
await server.start(Number(process.env.PORT || 0), '127.0.0.1');
console.log(JSON.stringify({ issuer: server.issuer.url }));

const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  const { userinfo_only: only = {}, ...rest } = JSON.parse(line);
  claims = rest;
  userinfoOnly = only;
  console.log('ok');
});
input.on('close', () => server.stop().then(() => process.exit(0)));
