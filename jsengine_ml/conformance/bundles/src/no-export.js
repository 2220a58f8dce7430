// Negative fixture: a bundle that computes something but exports nothing
// (what you get when output.library is forgotten).
var model = require('./entry.js');

model.predict([[0]]);
