// node:fs/promises — the promise forms of node:fs.

import { promises } from "node:fs";

export const {
  readFile, writeFile, appendFile, readdir, stat, lstat, mkdir, rm, unlink, rmdir, rename, access,
  constants,
} = promises;

export default promises;
