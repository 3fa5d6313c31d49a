/// <reference types="vitest/config" />
import { defineConfig } from "vite";

// The Rust server (`labboard`) serves the built `dist/`; during development Vite serves the app and
// forwards the API and the sync socket to a server on 127.0.0.1:8080.
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const backend = env.LABBOARD_BACKEND ?? "http://127.0.0.1:8080";
const proxy = {
  "/api": { target: backend, changeOrigin: false },
  "/sync": { target: backend, ws: true, changeOrigin: false },
};

export default defineConfig({
  base: "/",
  server: { host: "127.0.0.1", proxy },
  preview: { host: "127.0.0.1", proxy },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // One small CSS file and no inline assets: the CSP allows neither inline styles nor
    // `data:` fonts, and a separate file caches better than bytes inside JS.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
    reportCompressedSize: true,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
