import { defineConfig } from 'vite';

// Vite 8 transforms TSX with Oxc, which can target Preact's automatic runtime directly, so
// no framework plugin is needed.
export default defineConfig({
  base: './',
  oxc: {
    jsx: { runtime: 'automatic', importSource: 'preact' },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // The dashboard is a handful of small modules; one script keeps S3/CloudFront simple.
    chunkSizeWarningLimit: 250,
  },
  server: { port: 5173 },
});
