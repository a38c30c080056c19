// The clip page is rendered by the server; this adds what needs a script: reporting it.

import { attachReport } from '../report.js';
import { $ } from '../ui.js';

const button = $('#report-button');
if (button?.dataset.clipId) attachReport({ clipId: button.dataset.clipId });
