// The English catalogue, one file per area of the app (see i18n.js for the format).
import common from './en/common.js';
import listen from './en/listen.js';
import studio from './en/studio.js';
import pages from './en/pages.js';
import desk from './en/desk.js';
import errors from './en/errors.js';

export default { ...common, ...listen, ...studio, ...pages, ...desk, ...errors };
