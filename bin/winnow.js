#!/usr/bin/env node
// Launcher for the `winnow` command: registers tsx (TypeScript, no build step) and runs server/cli.ts.
import { register } from 'tsx/esm/api';

register();
await import('../server/cli.ts');
