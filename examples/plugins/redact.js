// A plugin: replaces every digit with '#' and names the customer's city,
// asked of the host through the host function `city` (granted by the host).
function transform(record) {
  return record
    .text()
    .replace(/[0-9]/g, "#")
    .replace(/(Ada|Grace)$/, (who) => `${who} of ${host.call("city", who).text()}`);
}
