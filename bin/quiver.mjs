#!/usr/bin/env node
// The `quiver` command: registers tsx (TypeScript at run time) and runs the CLI.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
