// ES-module entry whose only export is a default *object* holding predict.
import model from './entry.js';

export default { predict: model.predict };
