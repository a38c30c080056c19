import { renderAccount } from '../ui.js';

renderAccount();
