import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { App } from './components/App.tsx';
import { ConfigError, loadConfig } from './config.ts';

const root = document.getElementById('app') as HTMLElement;

loadConfig().then(
  (config) => render(<App config={config} />, root),
  (error: unknown) => {
    const message = error instanceof ConfigError ? error.message : String(error);
    render(
      <main class="auth">
        <div class="auth-card" role="alert">
          <h1>The dashboard is not configured</h1>
          <p>{message}</p>
          <p class="muted">
            It expects <code>config.json</code> next to index.html, e.g.{' '}
            <code>
              {'{"apiUrl":"https://api.example.com","wsUrl":"wss://ws.example.com/prod"}'}
            </code>
            .
          </p>
          <button type="button" class="button" onClick={() => window.location.reload()}>
            Reload
          </button>
        </div>
      </main>,
      root,
    );
  },
);
