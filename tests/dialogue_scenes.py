"""Scenes of our own with every quotation's speaker written down by hand: the offline attribution is measured on
them (tests/test_dialogue.py). Each scene: its paragraphs, and the speaker of each quotation in reading order
("narrator" for a quotation nobody speaks, such as a sign's words)."""

from __future__ import annotations

HARBOUR = (
    [
        "Mara Quill came down the harbour steps at dusk, where Tobias Wren was mending a net.",
        '"You are late," said Tobias.',
        '"The ferry was slow," she answered, "and the wind was against us the whole way."',
        '"It always is, this time of year."',
        '"Then you should have warned me."',
        '"I did warn you, Mara. I wrote it in my letter."',
        "She laughed and sat on an upturned crate.",
        '"Your letter said nothing of the wind," Mara said.',
        '"It said the ferry was slow," returned he. "That is the same thing."',
        "A bell rang out over the water. Old Agnes Penhale leaned from her window above the chandlery.",
        '"Supper is on the table," called Agnes, "and it will not wait for either of you."',
        '"We are coming," said Mara.',
        '"Coming is not arriving," Agnes replied.',
        "Tobias coiled the rope and shook his head.",
        '"She has said that every evening for thirty years," he muttered.',
        '"And every evening she is right," said Mara.',
    ],
    ["Tobias", "Mara", "Tobias", "Mara", "Tobias", "Mara", "Tobias", "Agnes", "Mara", "Agnes", "Tobias", "Mara"],
)

KITCHEN = (
    [
        "The kitchen was warm. Agnes ladled soup into three bowls and set the bread between them.",
        '"Eat," she said.',
        '"What is it?" asked Tobias.',
        '"Fish, Tobias. It is always fish."',
        '"I like fish."',
        '"Then stop asking."',
        "Mara tore the bread and passed half of it across the table.",
        '"Agnes, did the lamp keeper come down today?"',
        '"He did not," said Agnes. "Nobody has seen Silas Hale since Sunday."',
        '"That is not like him," Tobias said slowly.',
        '"No," Mara agreed. "It is not."',
        "For a while nobody spoke. The fire ticked in the grate.",
        '"Someone ought to go up," said Agnes at last.',
        '"Tomorrow," said Tobias.',
        '"Tonight," said Mara.',
        "Tobias looked at her, and then at the dark window.",
        '"Tonight, then," he said.',
    ],
    [
        "Agnes",
        "Tobias",
        "Agnes",
        "Tobias",
        "Agnes",
        "Mara",
        "Agnes",
        "Tobias",
        "Mara",
        "Agnes",
        "Tobias",
        "Mara",
        "Tobias",
    ],
)

LIGHTHOUSE = (
    [
        "The path up the headland was steep and wet. Mara went first with the lantern; Tobias followed with the rope.",
        "'I don't like it,' said Tobias. 'The door's open.'",
        "'Silas never leaves it open,' she said.",
        "Inside, the lamp room was cold. On the table lay a logbook, open, with a line in Silas's hand.",
        '"Gone to the rocks for the bell," Mara read aloud. "Back by noon."',
        '"Which noon?" said Tobias.',
        '"It does not say."',
        '"Then we look on the rocks."',
        "They heard him before they saw him: a voice from below the wall, hoarse from shouting.",
        '"Up here!" cried Silas. "Mind the third step, it is loose."',
        '"Silas! Are you hurt?"',
        '"Only my pride, Mara. And my ankle, a little."',
        "Tobias let the rope down over the wall.",
        '"Take hold of this," he called, "and do not let go until I say."',
        '"I have held worse ropes than yours, Tobias Wren," said Silas, "in worse weather than this."',
        '"Then hold this one," Tobias said. "I am pulling."',
    ],
    ["Tobias", "Mara", "Mara", "Tobias", "Mara", "Tobias", "Silas", "Mara", "Silas", "Tobias", "Silas", "Tobias"],
)

TALE = (
    [
        "Later, by the fire, Silas told them how the bell had come loose.",
        '"It began in the night," said Silas. "There was a sound like a door knocking, over and over, and I thought '
        "at first that someone had come up the path.",
        '"But there was nobody. Only the bell, swinging on one bolt, and the sea beneath it waiting. So I went down '
        'to tie it, and the rock was wetter than I thought."',
        '"You might have drowned," said Agnes.',
        '"I might have," he agreed. "But I did not."',
        "— And the bell? — asked Mara.",
        "— Tied, — said Silas. — It will hold until the smith comes.",
        '"The smith will not come until spring," Tobias said.',
        '"Then it will hold until spring."',
        '"Silas, you are the most stubborn man on this island."',
        '"Second most," said Silas. "Agnes is the first."',
        'Agnes did not deny it. "Drink your tea," was all she said.',
    ],
    ["Silas", "Agnes", "Silas", "Mara", "Silas", "Tobias", "Silas", "Mara", "Silas", "Agnes"],
)

SCENES = {"harbour": HARBOUR, "kitchen": KITCHEN, "lighthouse": LIGHTHOUSE, "tale": TALE}
CHARACTERS = {"Mara": "female", "Tobias": "male", "Agnes": "female", "Silas": "male"}
