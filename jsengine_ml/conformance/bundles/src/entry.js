// Tiny deterministic "model" used to build the webpack library-type fixtures.
// ES5 on purpose: the built bundles must run on Duktape (ES5.1 only).
// Deliberately NOT "use strict": webpack would hoist it into the bundle IIFE,
// and then library.type "this" (this.WineModel = ...) runs with this === undefined.
// predict(rows) -> [[2 * sum(row)], ...]   e.g. [[1, 2], [3, 4]] -> [[6], [14]]

function predict(rows) {
  var out = [];
  for (var i = 0; i < rows.length; i++) {
    var s = 0;
    for (var j = 0; j < rows[i].length; j++) {
      s += rows[i][j];
    }
    out.push([s * 2]);
  }
  return out;
}

module.exports = { predict: predict };
