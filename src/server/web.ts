// Static web UI and model files for the in-browser mode.
import { Elysia } from "elysia";
import type { Config } from "../config";

export function webRoutes(_config: Config) {
  return new Elysia({ name: "web" });
}
