'use strict'
// Preloaded with `node -r` (__test__/registry.spec.ts): this process reports a CPU no prebuilt
// binary exists for, so loading index-lock takes the path a user on such a machine takes.
Object.defineProperty(process, 'arch', { value: process.env.FAKE_ARCH })
