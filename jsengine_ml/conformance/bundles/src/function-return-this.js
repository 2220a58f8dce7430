/* Hand-written (not webpack) bundle in the "attach to the global object" style. */
Function("return this")().predict = function (rows) {
  var out = [];
  for (var i = 0; i < rows.length; i++) {
    var s = 0;
    for (var j = 0; j < rows[i].length; j++) {
      s += rows[i][j];
    }
    out.push([s * 2]);
  }
  return out;
};
