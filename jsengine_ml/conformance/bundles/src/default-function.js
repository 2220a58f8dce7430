// ES-module entry whose only export is a default *function* named predict.
import model from './entry.js';

export default function predict(rows) {
  return model.predict(rows);
}
