'use strict'
// The one proper-lockfile configuration every bench row uses, set up to be fair to it:
// - realpath: false, as index-lock's paths in the bench need no resolving either;
// - wait instead of failing: retry forever, every 5-10 ms (5 ms, randomized up to 2x). A large
//   numeric `retries` would also wait, but its retry library precomputes the whole schedule on
//   every lock() call, which adds ~10 ms to each one; `forever` with retries: 1 does not.
module.exports = {
  realpath: false,
  retries: { forever: true, retries: 1, factor: 1, minTimeout: 5, maxTimeout: 5, randomize: true },
}
