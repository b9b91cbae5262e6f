/** The console's entry: renders the app into the page `index.html` gives it. */

import { render } from 'preact';

import { App } from './app';

render(<App />, document.getElementById('app')!);
