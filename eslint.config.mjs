// `npm run lint`: typescript-eslint's strict type-checked rules and eslint-plugin-rxjs-x's strict
// set over every TypeScript file of tsconfig.json (src, spec, examples, bench, stress, e2e), with
// type information from the project service; the plain JavaScript (scripts/, this file) gets
// ESLint's recommended rules, which need no types.
import eslint from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import rxjsX from 'eslint-plugin-rxjs-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'coverage/', 'docs/api/', 'bench/out/', '.smoke/']),
  eslint.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.strictTypeChecked, rxjsX.configs.strict],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Every subscription the library makes is owned and ended (STYLE.md, convention 4).
      'rxjs-x/no-ignored-subscription': 'error',
      // Numbers in messages and reports are the common case and print as expected.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // `() => void expr` is how an arrow callback says "nothing to return" in this code base.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
    },
  },
  {
    files: ['spec/**/*.ts'],
    rules: {
      // A spec subscribes without an error handler on purpose: an error it did not expect surfaces
      // as an uncaught exception (inside flush() in a marble test), and mocha fails the test with it.
      'rxjs-x/no-ignored-error': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
);
