// The reply box: Enter sends, Shift+Enter is a new line; a canned reply goes in at the cursor, by a click on it
// or by its shortcut typed as "/shortcut" and a space or Tab. Listeners sit on the page: the box is swapped in
// again when a draft comes.
(function () {
  function insert(box, text, from, to) {
    box.setRangeText(text, from, to, "end");
    box.focus();
  }
  document.addEventListener("click", function (e) {
    var button = e.target.closest(".canned-reply");
    if (!button) return;
    var box = document.getElementById("reply-text");
    insert(box, button.dataset.text, box.selectionStart, box.selectionEnd);
  });
  document.addEventListener("keydown", function (e) {
    var box = e.target;
    if (box.id !== "reply-text") return;
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      box.form.requestSubmit();
      return;
    }
    if (e.key === " " || e.key === "Tab") {
      var before = box.value.slice(0, box.selectionStart);
      var typed = before.match(/(?:^|\s)\/([\w\u0400-\u04ff-]+)$/);
      if (!typed) return;
      var button = document.querySelector('.canned-reply[data-shortcut="' + typed[1].toLowerCase() + '"]');
      if (!button) return;
      e.preventDefault();
      insert(box, button.dataset.text, box.selectionStart - typed[1].length - 1, box.selectionStart);
    }
  });
})();
