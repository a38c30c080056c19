// The Arabic catalogue, one file per area of the app (see i18n.js for the format).
import common from './ar/common.js';
import listen from './ar/listen.js';
import studio from './ar/studio.js';
import pages from './ar/pages.js';
import desk from './ar/desk.js';
import errors from './ar/errors.js';

export default { ...common, ...listen, ...studio, ...pages, ...desk, ...errors };
